"""The compatibility engine on a Kubernetes fleet: node facts from GFD labels, workloads, scan, upgrade impact, the fleet policy and the admission webhook."""
