from tests.training.conftest import member, member_client, outsider, outsider_client, raw, unique

__all__ = ["member", "member_client", "outsider", "outsider_client", "raw", "unique"]
