"""Helpers for the Intro to PyTorch course.

One job per module:

- ``helper.data``   where data lives, downloads, fake data for tests
- ``helper.plots``  ``view_classify``, ``imshow``, ``show_batch``, ``plot_history``, ...
- ``helper.train``  the course's one train/evaluate loop and device choice
- ``helper.models`` the course's fully-connected ``Network``
- ``helper.pretrained`` the pretrained EfficientNet-Lite0 of Part 8, its transforms and labels
- ``helper.metrics`` predictions, confusion matrix, precision and recall per class

Import the module you need (``from helper.plots import view_classify``); importing
``helper`` itself is cheap and pulls in nothing heavy.
"""

__version__ = "0.1.0"
