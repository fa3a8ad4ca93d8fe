"""Helpers for the Intro to PyTorch course.

One job per module:

- ``helper.data``       the data root, downloads, the offline hint, a toy spiral data set
- ``helper.plots``      ``view_classify``, ``imshow``, ``show_batch``, ``plot_history``, ...
- ``helper.train``      the course's one train/evaluate loop, TensorBoard logging, device choice
- ``helper.metrics``    the course's one ``accuracy``, predictions and the confusion matrix
- ``helper.models``     the course's small network, ``Network``
- ``helper.pretrained`` the pretrained EfficientNet-Lite0 of Part 8, its transforms and labels
- ``helper.colab``      on Colab: keep the data and checkpoints in Google Drive (opt-in)
- ``helper.doctor``     what is wrong with this setup and its fix (``python -m helper.doctor``)
- ``helper.datacheck``  each data set present and complete, looked at on disk
- ``helper.calibrate``  each part's expected time on this machine

Import the module you need (``from helper.plots import view_classify``); importing
``helper`` itself is cheap and pulls in nothing heavy.
"""

__version__ = "0.1.0"
