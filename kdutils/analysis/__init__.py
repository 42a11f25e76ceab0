"""Reading results: statistics over seeds and paired gaps (:mod:`.stats`), class-bias correction
(:mod:`.calibration`) and the course's figures (:mod:`.plots`)."""
