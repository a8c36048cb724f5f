"""Network definitions of the learned methods. Each file imports only torch (and the standard library), so
it can ship unchanged as a submission's ``network.py``."""
