// A real OpenID Connect provider (npm's certified oidc-provider) for the tests.
// It issues JWT access tokens by the client-credentials grant: each client is a
// user of the broker (the token's sub is its client_id). Its signing keys come from
// OIDC_JWKS (private JWKs, the first one signs); every request path is printed, so
// the tests can count how often the broker fetched the keys.
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const audience = process.env.OIDC_AUDIENCE;
const jwks = JSON.parse(process.env.OIDC_JWKS);
const clients = JSON.parse(process.env.OIDC_CLIENTS).map(([id, secret]) => ({
  client_id: id, client_secret: secret, grant_types: ["client_credentials"],
  redirect_uris: [], response_types: [], id_token_signed_response_alg: process.env.OIDC_ALG,
}));

const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks,
  clients,
  cookies: { keys: ["test-cookie-key-not-secret"] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      getResourceServerInfo: () => ({
        scope: "uploads", audience, accessTokenFormat: "jwt", accessTokenTTL: 600,
        jwt: { sign: { alg: process.env.OIDC_ALG } },
      }),
    },
  },
});
provider.use(async (ctx, next) => {
  console.log(`${ctx.method} ${ctx.path}`);
  await next();
});
provider.listen(port, "127.0.0.1", () => console.log("listening"));
