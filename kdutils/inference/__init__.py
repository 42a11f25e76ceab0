"""Running a trained model: batches on its device, predictions, accuracy and held-out bits per
character, a frozen teacher's outputs (:mod:`.predict`); sampling text and judging it
(:mod:`.sampling`); what a model costs at deployment, ONNX Runtime and int8 (:mod:`.deploy`)."""
