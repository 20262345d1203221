"""Evaluation: encode / decode / IoU and the service's own answer; procedural and real checks."""
