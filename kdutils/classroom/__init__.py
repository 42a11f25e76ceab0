"""For a class: teacher packs that carry trained models from the instructor to every laptop
(:mod:`.pack`, checked by :mod:`.pack_checks`), and check cells for exercises
(:mod:`.exercises`)."""
