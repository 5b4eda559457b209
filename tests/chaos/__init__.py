"""The cluster run: three Keyport hosts on one PostgreSQL and one Redis behind an nginx load
balancer, under mixed traffic and injected faults, with the promises of docs/operations.md
("Tested guarantees") counted as violations that must end at zero.

`tests/chaos/test_cluster.py` runs the short version in every test run;
`bench/cluster.py` runs the long one and prints the report docs/operations.md quotes.
"""
