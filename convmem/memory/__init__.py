"""Memory: how a user's past turns are found and handed to a model. Recall over full text and
vectors with rank fusion (retrieval, fusion), the stages that refine it (speakers, time frames,
position priors, question rewriting), the context block a reply or an app sends to its model
(context), and what a vector carries besides itself (vector_payload). Domain code over
convmem.ports: it imports contracts, ports and errors, never Kafka, SQL, HTTP, telemetry,
ops or the dev stack."""
