"""dlm-bench's Hydra plugins: the sweeper that expands sharded cells into one job per shard, and
the local-gpus launcher (one job per GPU of this node). Hydra finds them in the `hydra_plugins`
namespace package; configs/config.yaml and configs/launcher/local-gpus.yaml select them."""
