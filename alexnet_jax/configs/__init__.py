"""Config files, one per family (`alexnet.py`, `vgg.py`, ...), the shared `common.py` (defaults,
arguments, the one override order) and `validate.py` (the check of a finished config).

Each family module has `get_config(arg)`; `python main.py --config=configs/alexnet.py:smoke`
loads it through the repository's `configs/` folder, which re-exports these modules.
"""
