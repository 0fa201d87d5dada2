// Decides batches of IAM requests with @cloud-copilot/iam-simulate (AGPL-3.0): a test-time tool,
// run as a process of its own by tests/access/simulator.py, never imported by the app nor shipped.
// Protocol: each input line is a JSON array of simulations (the package's Simulation shape); each
// output line is a JSON array of results in the same order: {result, denials, grants, errors}.
import { createInterface } from 'node:readline';
import { getDenialReasons, getGrantReasons, runSimulation } from '@cloud-copilot/iam-simulate';

async function decide(simulation) {
  const outcome = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (outcome.resultType === 'error') {
    return { result: 'Error', errors: outcome.errors };
  }
  const analyses = outcome.resultType === 'single' ? [outcome.result] : outcome.results;
  const first = analyses[0];
  return {
    result: outcome.overallResult,
    denials: first ? getDenialReasons(first.analysis) : [],
    grants: first && outcome.overallResult === 'Allowed' ? getGrantReasons(first.analysis) : [],
    ignoredContextKeys: first ? first.ignoredContextKeys ?? [] : [],
  };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const results = [];
  for (const simulation of JSON.parse(line)) {
    try {
      results.push(await decide(simulation));
    } catch (error) {
      results.push({ result: 'Error', errors: { message: String(error && error.message ? error.message : error) } });
    }
  }
  process.stdout.write(JSON.stringify(results) + '\n');
}
