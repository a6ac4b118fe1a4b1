"""Sign raw HTTP requests with the SDK's own signer, for tests that bend a request on purpose."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer


def sign(
    method: str,
    url: str,
    *,
    ak: str,
    sk: str,
    project_id: str,
    body: bytes | None = None,
    sdk_date: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers (Authorization included) the SDK would send for this request."""
    parts = urlsplit(url)
    header_params = {"Content-Type": "application/json", "X-Project-Id": project_id, **(headers or {})}
    if sdk_date is not None:
        header_params["X-Sdk-Date"] = sdk_date
    request = SdkRequest(
        method=method,
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=parse_qsl(parts.query, keep_blank_values=True),
        header_params=header_params,
        body=body or "",
    )
    Signer(BasicCredentials(ak, sk, project_id)).sign(request)
    return dict(request.header_params)
