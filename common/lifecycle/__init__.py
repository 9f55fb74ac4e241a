"""The restream lifecycle: every change of a restream's state goes through here — what the
API and the vendor surfaces ask (`service`), where restreams go (`service` placing through
`commands`), what workers report (`reports`), what happens to nodes (`nodes`) — each change
made by `commands` with its transition, its reservation, its event and its control message
together. The reconciler applies its plan through these too."""
