"""What every criterion of the plugin does in reduce_metrics (not registered: the
package imports only its public modules)."""
import math

from fairseq import metrics, utils


def summer(logging_outputs):
    """``total(key)``: the sum of ``key`` over logging outputs (batches, workers)."""
    def total(key):
        return utils.item(sum(log.get(key, 0) for log in logging_outputs))

    return total


def log_loss(name, nats, n):
    """A summed loss in nats as fairseq logs losses: bits per item, weighted by ``n``."""
    metrics.log_scalar(name, nats / max(n, 1) / math.log(2), n, round=3)
