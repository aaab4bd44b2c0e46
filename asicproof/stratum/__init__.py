"""Stratum v1 core, pure Python with no Django: codec, header, share, jobs, proof, vardiff,
session/server (the engine behind a Backend) and a software miner."""
