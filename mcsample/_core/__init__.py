"""Pieces shared by the sampler families: Hamiltonian dynamics, adaptation, chain plumbing."""
