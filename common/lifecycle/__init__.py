"""The restream lifecycle: every change of a restream's state goes through here — what the
API and the vendor surfaces ask (`service`), where restreams go (`service` placing through
`commands`), what workers report (`reports`), what happens to nodes (`nodes`) — each change
made by `commands` with its transition, its reservation, its event and its control message
together: the control plane's phase by its commands alone, a run only from its worker's
reports. The reconciler applies its plan through these too. How restreams read to clients,
a page at a time with their live statistics, is the read model (`views`)."""
