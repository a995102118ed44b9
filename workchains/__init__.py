"""AiiDA workchains of aiida-les: training, exploration, labelling and active-learning campaigns."""
