"""Picklable Cut transforms: rephrase, synthesize, score, gate."""
