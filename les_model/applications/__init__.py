"""Applications built on a trained model and its calculator, outside the model core: phonons with the non-analytic
correction (:mod:`les_model.applications.phonons`) and infrared spectra from trajectories
(:mod:`les_model.applications.infrared`).
"""
