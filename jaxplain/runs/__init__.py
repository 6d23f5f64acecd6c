"""Long jobs that never lose or mix anything: the run folder, its identity, its journal and store, and the loop."""
