"""The course's architectures: classifiers for images (MLPs, the PyTorch tutorial's CNNs, a small
MNIST CNN) in :mod:`.classifiers`, and a character-level GPT in :mod:`.gpt`."""
