"""Config files, one per family (`alexnet.py`, `vgg.py`, ...), and the shared `common.py`.

Each family module has `get_config(arg)`; `python main.py --config=configs/alexnet.py:smoke`
loads it through the repository's `configs/` folder, which re-exports these modules.
"""
