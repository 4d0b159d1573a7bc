"""IHC panel interpretation: vocabulary, knowledge base, Bayesian differential, next markers."""
