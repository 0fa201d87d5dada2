"""AWS Glue job scripts of the data lake: standard library at import time, Glue and Spark only inside main()."""
