"""ANN-to-SNN conversion: the float reference of an imported network (:mod:`.ann`) and the
algorithms of the ``convert-ann`` pass (:mod:`.convert`). docs/conversion.md has the equations."""
