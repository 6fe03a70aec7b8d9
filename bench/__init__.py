"""Benchmarks comparing Portside with CNCF Distribution on one machine (issue #7). Entry: ``python -m bench.run``."""
