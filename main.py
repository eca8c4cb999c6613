"""Train, evaluate or predict with a model described by a config file.

  python main.py --config=configs/alexnet.py:smoke
  python main.py --config=configs/alexnet.py --workdir=runs/alexnet
  python main.py --config=configs/alexnet.py:smoke --mode=eval        # evaluate the latest checkpoint
  python main.py --config=configs/alexnet.py:smoke --mode=predict --images=photos/ --topk=5

The flags and the logic live in `alexnet_jax/main_lib.py`, which the installed `alexnet-jax`
command runs as well (`alexnet-jax train --config=alexnet:smoke`).
"""

from alexnet_jax import main_lib

if __name__ == "__main__":
  main_lib.run()
