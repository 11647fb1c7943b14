"""What a process shows about itself to Prometheus and to load balancers: metric families and the `/healthz` and `/metrics` endpoints every daemon serves."""
