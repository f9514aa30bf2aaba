"""Hugging Face Space bundle builder and deploy command.

``python -m spaces build OUT_DIR [--with-weights ID,...]`` writes a ready Space folder;
``python -m spaces deploy --repo-id USER/NAME [--private] [--hardware ...]`` uploads one
(see docs/deploy.md). Never shipped inside a bundle: there, ``import spaces`` is Hugging
Face's ZeroGPU package.
"""
