"""Training, around one loop over named loss terms (:mod:`.loop`): from labels (:mod:`.fit`), from
a teacher (:mod:`.distill`, with the teacher's outputs in :mod:`.teacher_outputs` and
:mod:`.sparse_logits`, text a model writes in :mod:`.generated_text`), from feature hints
(:mod:`.hints`), online among peers (:mod:`.online`), semi-supervised (:mod:`.semi`); with
jitter and max-norm (:mod:`.regularize`), several runs side by side (:mod:`.parallel`) and
progress bars (:mod:`.progress`)."""
