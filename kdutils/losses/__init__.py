"""What a student minimizes: losses on logits (KD, its variants and other divergences) in
:mod:`.logits`, relation-based losses in :mod:`.relations`, and the objectives that combine them
into the named terms of the training loop in :mod:`.objectives`. Pure functions of tensors: no
training and no data here (feature hints, which need a teacher's feature maps, live with their
training in :mod:`kdutils.training.hints`)."""
