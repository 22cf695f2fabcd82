"""Settings -> how Kafka clients encrypt and authenticate: the one place that knows.

`client_security()` builds the aiokafka keyword arguments every client gets
(the CLI's producer, followers and admin client, and through `faust_credentials()`
the worker's Faust consumer and producer), so a protocol, CA or password can never
reach one client and miss another. Consistency of the settings themselves is
checked when Settings is built (`pipeline.settings.transport_problem`).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from pipeline.settings import SASL_PROTOCOLS, TLS_PROTOCOLS, ConfigError, Settings

if TYPE_CHECKING:  # faust is heavy; the CLI's produce/tail never import it
    from faust.types.auth import CredentialsT


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The client TLS context for SSL / SASL_SSL (None otherwise); ConfigError names the bad file."""
    if settings.security_protocol not in TLS_PROTOCOLS:
        return None
    # Built step by step (not aiokafka.helpers.create_ssl_context) so an error names the file at fault.
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"STREAMNLP_SSL_CAFILE={settings.ssl_cafile} is not a PEM CA bundle ({exc}); "
            "point it at the CA certificate that signed the brokers' certificates"
        ) from None
    if settings.ssl_certfile is not None:
        try:
            context.load_cert_chain(
                str(settings.ssl_certfile), str(settings.ssl_keyfile) if settings.ssl_keyfile else None
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"cannot load the client certificate STREAMNLP_SSL_CERTFILE={settings.ssl_certfile} "
                f"with STREAMNLP_SSL_KEYFILE={settings.ssl_keyfile} ({exc}); both must be PEM and the key unencrypted"
            ) from None
    context.check_hostname = settings.ssl_check_hostname
    return context


def client_security(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for encryption and authentication (any client type)."""
    kwargs: dict[str, Any] = {"security_protocol": settings.security_protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.security_protocol in SASL_PROTOCOLS:
        assert settings.sasl_password is not None  # enforced by Settings validation
        # aiokafka reads the "plain" username/password for the SCRAM mechanisms too.
        kwargs.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password.get_secret_value(),
        )
    return kwargs


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's `broker_credentials` carrying exactly what `client_security` gives aiokafka."""
    import faust

    kwargs = client_security(settings)
    protocol = kwargs["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(kwargs["ssl_context"])
    # Faust picks SASL_SSL vs SASL_PLAINTEXT from whether an SSL context is given.
    return faust.SASLCredentials(
        username=kwargs["sasl_plain_username"],
        password=kwargs["sasl_plain_password"],
        mechanism=kwargs["sasl_mechanism"],
        ssl_context=kwargs.get("ssl_context"),
    )
