"""ACD: queues, routing and agent states.

`agent_state` is the pure core of one agent's state (sans-IO, time passed in); the queue and
routing code drives it with what the engine reports and reconciles it with the engine's truth.
`queue` (configuration, waiting calls, callback places) and `routing` (`Router`: strategies,
decisions with their reasons) are the pure routing core.
"""
