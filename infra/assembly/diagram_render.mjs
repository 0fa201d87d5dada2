// Reads Graphviz DOT on stdin and writes the SVG layout to stdout (WebAssembly Graphviz, no `dot` binary).
import { Graphviz } from "@hpcc-js/wasm-graphviz";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const source = Buffer.concat(chunks).toString("utf8");

try {
  if (!source.trim()) throw new Error("no DOT on stdin");
  const graphviz = await Graphviz.load();
  process.stdout.write(graphviz.layout(source, "svg", "dot"));
} catch (error) {
  const message = String(error?.message ?? error).trim().split("\n")[0];
  process.stderr.write(`diagram_render: ${message}\n`);
  process.exitCode = 1;
}
