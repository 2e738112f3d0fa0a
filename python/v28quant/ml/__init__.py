"""The ML stack.

Features and labels without look-ahead, boosted and stacked direction models, the transformer
predictor, the SAC position sizer, the continuous learner with drift detection, the POMDP exposure
controller, the adaptive capital allocator and the model store.

Every model emits :class:`v28quant.signals.Signal` objects (``signals(...)``) for the aggregator.
Submodules are imported on demand so that importing ``v28quant.ml`` does not load torch.
"""
