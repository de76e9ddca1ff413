"""RestClient against the real local server: archive redirect, TTL, publish, delete."""

from __future__ import annotations

import datetime
import urllib.request

import tinker


def test_checkpoint_lifecycle_over_rest(tinker_service_client: tinker.ServiceClient) -> None:
    service = tinker_service_client
    trainer = service.create_lora_training_client("tinker-local/tiny", rank=2, seed=0)
    path = trainer.save_state("ckpt").result(timeout=60).path
    rest = service.create_rest_client()

    archive = rest.get_checkpoint_archive_url_from_tinker_path(path).result(timeout=60)
    assert archive.expires > datetime.datetime.now(datetime.timezone.utc)
    with urllib.request.urlopen(archive.url, timeout=30) as response:
        assert len(response.read()) > 0

    rest.set_checkpoint_ttl_from_tinker_path(path, 3600).result(timeout=30)
    rest.publish_checkpoint_from_tinker_path(path).result(timeout=30)
    (listed,) = rest.list_checkpoints(trainer.model_id).result(timeout=30).checkpoints
    assert (listed.tinker_path, listed.public) == (path, True)
    rest.unpublish_checkpoint_from_tinker_path(path).result(timeout=30)

    rest.delete_checkpoint_from_tinker_path(path).result(timeout=30)
    assert rest.list_checkpoints(trainer.model_id).result(timeout=30).checkpoints == []
