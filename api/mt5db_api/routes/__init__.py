"""The HTTP routes, one module per area; each exports `router`, included once by app.py."""
