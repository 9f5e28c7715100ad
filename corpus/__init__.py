"""The outside corpus: real files from public sources, labelled by independent tools and
judged by the validator (`make corpus`; not part of `make test`)."""
