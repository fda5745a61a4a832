"""The edge: the load balancer in front of the API replicas."""
