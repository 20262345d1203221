"""Evaluation: encode / decode / IoU and the service's own answer path; procedural and real checks."""
