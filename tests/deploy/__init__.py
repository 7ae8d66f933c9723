"""The production layout on this machine: hosts in network namespaces (make test-deploy)."""
