"""Reading runs after the fact: results over seeds and the paper tables (`results`), the curriculum
figures and end-of-run summary (`viz`, which the training loop also draws at the end of a run) and the
trainer benchmark against TRL (`bench`)."""
