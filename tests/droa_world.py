"""DeepRacer on AWS as racers reach it, for the DRoA tests: fixtures to import by name.

- moto's server: the Cognito user pool with one racer and the identity pool trusting it, and the S3
  service holding the deployment's buckets;
- ``tests.fakes.s3_put_only`` in front of moto's S3: the racer's identity-pool credentials may only
  put into the upload bucket (no List, Get, Head); the deployment's backend may do anything;
- ``tests.fakes.droa_api``: the deployment's env.js and API, verifying every SigV4 signature
  against the credentials the identity pool issued.

Each test gets a fresh upload bucket, proxy and deployment; on teardown the proxy must not have
refused a single racer request, so a List/Get/Head from the DRoA path fails the test that made it.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config

from tests.fakes.droa_api import FakeDroa
from tests.fakes.s3_put_only import PutOnlyS3
from tests.fakes.sigv4 import Secret

REGION = "eu-west-1"
USERNAME = "racer-1"
PASSWORD = "Corr3ct-Horse!battery"
BACKEND = Secret("DROABACKENDKEY0001", "droa-backend-secret")
ADMIN = Secret("admin", "admin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def moto_client(service: str, url: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name=REGION, aws_access_key_id=ADMIN.access_key_id,
                        aws_secret_access_key=ADMIN.secret_access_key, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server: Cognito for the sign-in, S3 for the deployment's buckets."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@dataclass(frozen=True)
class Pools:
    user_pool_id: str
    client_id: str
    identity_pool_id: str
    racer: Secret  # the temporary credentials the identity pool issues to the racer


@pytest.fixture(scope="session")
def pools(moto_url: str) -> Pools:
    """A DRoA-like user pool with one racer, its identity pool, and the credentials it issues."""
    idp = moto_client("cognito-idp", moto_url)
    pool_id = idp.create_user_pool(PoolName="droa-users")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="droa-web", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username=USERNAME)
    idp.admin_set_user_password(UserPoolId=pool_id, Username=USERNAME, Password=PASSWORD, Permanent=True)
    identity = moto_client("cognito-identity", moto_url)
    provider = f"cognito-idp.{REGION}.amazonaws.com/{pool_id}"
    identity_pool_id = identity.create_identity_pool(
        IdentityPoolName="droa_identities", AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": provider, "ClientId": client_id}],
    )["IdentityPoolId"]
    # Ask the identity pool once, as a racer's sign-in does: the deployment trusts what it issues.
    token = idp.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId=client_id,
                              AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD})["AuthenticationResult"]["IdToken"]
    identity_id = identity.get_id(IdentityPoolId=identity_pool_id, Logins={provider: token})["IdentityId"]
    issued = identity.get_credentials_for_identity(IdentityId=identity_id, Logins={provider: token})["Credentials"]
    return Pools(pool_id, client_id, identity_pool_id, Secret(issued["AccessKeyId"], issued["SecretKey"], issued["SessionToken"]))


@dataclass
class Transit:
    """The deployment's upload bucket: ``admin`` reaches moto directly (for the tests' own eyes)."""

    admin: Any
    bucket: str
    proxy: PutOnlyS3

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for page in self.admin.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = self.admin.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return found

    def put(self, prefix: str, files: dict[str, bytes | str]) -> None:
        for name, body in files.items():
            self.admin.put_object(Bucket=self.bucket, Key=f"{prefix}/{name}", Body=body.encode() if isinstance(body, str) else body)


@pytest.fixture
def transit(moto_url: str, pools: Pools) -> Iterator[Transit]:
    admin = moto_client("s3", moto_url)
    bucket = f"droa-upload-{uuid.uuid4().hex[:12]}"
    admin.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    proxy = PutOnlyS3(moto_url, bucket, REGION, racers={pools.racer.access_key_id: pools.racer},
                      others={BACKEND.access_key_id: BACKEND, ADMIN.access_key_id: ADMIN}).start()
    yield Transit(admin, bucket, proxy)
    proxy.stop()
    proxy.assert_put_only()


@pytest.fixture
def droa_site(pools: Pools, transit: Transit) -> Iterator[FakeDroa]:
    fake = FakeDroa(
        region=REGION, user_pool_id=pools.user_pool_id, user_pool_client_id=pools.client_id,
        identity_pool_id=pools.identity_pool_id, upload_bucket=transit.bucket, s3_endpoint_url=transit.proxy.url,
        backend=BACKEND, racers={pools.racer.access_key_id: (pools.racer, USERNAME)},
    ).start()
    yield fake
    fake.stop()


def cognito_env(moto_url: str, cache: Path) -> dict[str, str]:
    """Cognito calls go to moto through botocore's own endpoint variables; the cache goes to ``cache``."""
    return {
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": moto_url,
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY": moto_url,
        "XDG_CACHE_HOME": str(cache),
    }


@dataclass(frozen=True)
class RealCheckpoint:
    metadata: dict[str, Any]  # the model_metadata.json it was trained with
    files: dict[str, bytes]  # suffix ("index", "data-00000-of-00001", "meta") -> content


@pytest.fixture(scope="session")
def real_checkpoint(real_models: Any) -> RealCheckpoint:
    """The last checkpoint of the real camera model (tests.real_models): six discrete actions."""
    real = real_models.model("camera")
    files = real.files.checkpoint_files(real.last, real.checkpoints[real.last])
    return RealCheckpoint(real.metadata, {suffix: Path(path).read_bytes() for suffix, path in files.items()})


def install_checkpoint(client: Any, bucket: str, prefix: str, name: str, files: dict[str, bytes]) -> None:
    """Replace checkpoint ``name``'s files under ``prefix/model/`` with a real checkpoint's."""
    for suffix, body in files.items():
        client.put_object(Bucket=bucket, Key=f"{prefix}/model/{name}.{suffix}", Body=body)

