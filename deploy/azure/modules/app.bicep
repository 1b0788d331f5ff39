// The web container app (Daphne, websockets through the HTTPS ingress on port 8000) and the
// manual `migrate` job running the same image. Secrets (Django key, DATABASE_URL with the
// PostgreSQL password, REDIS_URL with the Redis key) are Container Apps secrets; Azure AI Voice
// Live is reached with the managed identity (AZURE_CLIENT_ID), so no AI key exists anywhere.
param name string
param migrateJobName string
param deployWebApp bool = true
param location string
param tags object = {}
param image string
param environmentName string
param identityName string
param registryServer string
param redisName string
param postgresHost string
param postgresDatabase string
param postgresAdminLogin string
@secure()
param postgresAdminPassword string
@secure()
param djangoSecretKey string
param voiceLiveEndpoint string
param voiceLiveModel string
param voiceLiveApiVersion string
param minReplicas int = 2
param maxReplicas int = 10
// Scale out before a replica's admission control (maxSessionsPerWorker) refuses anyone.
param targetSessionsPerReplica int = 90
param cpuUtilizationPercent int = 65
param maxSessionsPerWorker int = 130

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' existing = {
  name: environmentName
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource redis 'Microsoft.Cache/redis@2024-03-01' existing = {
  name: redisName
}

var fqdn = '${name}.${environment.properties.defaultDomain}'
// A registry row is live while its worker's heartbeat (VOICE_HEARTBEAT_SECONDS, 5 s) is
// younger than three beats (assistant/live/registry.py, STALE_AFTER_HEARTBEATS).
var liveWindowSeconds = 15
// Live sessions of every replica, as the registry holds them; rows being ended are left out.
var liveSessionsQuery = 'SELECT COUNT(*) FROM assistant_livesession WHERE end_reason = \'\' AND last_seen > now() - interval \'${liveWindowSeconds} seconds\''
var databaseUrl = 'postgres://${postgresAdminLogin}:${uriComponent(postgresAdminPassword)}@${postgresHost}:5432/${postgresDatabase}?sslmode=require'
var redisUrl = 'rediss://:${uriComponent(redis.listKeys().primaryKey)}@${redis.properties.hostName}:${redis.properties.sslPort}/0'

var secrets = [
  { name: 'django-secret-key', value: djangoSecretKey }
  { name: 'database-url', value: databaseUrl }
  { name: 'redis-url', value: redisUrl }
]

var env = [
  { name: 'DJANGO_SETTINGS_MODULE', value: 'voiceproject.settings.base' }
  { name: 'DJANGO_SECRET_KEY', secretRef: 'django-secret-key' }
  { name: 'DJANGO_DEBUG', value: '0' }
  { name: 'DJANGO_ALLOWED_HOSTS', value: fqdn }
  { name: 'DJANGO_CSRF_TRUSTED_ORIGINS', value: 'https://${fqdn}' }
  // TLS ends at the Container Apps edge, which sets X-Forwarded-Proto.
  { name: 'DJANGO_SECURE', value: '1' }
  { name: 'DATABASE_URL', secretRef: 'database-url' }
  { name: 'DJANGO_CONN_MAX_AGE', value: '60' }
  { name: 'REDIS_URL', secretRef: 'redis-url' }
  { name: 'AZURE_VOICELIVE_ENDPOINT', value: voiceLiveEndpoint }
  // No AZURE_VOICELIVE_API_KEY: DefaultAzureCredential uses the managed identity below.
  { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
  { name: 'AZURE_VOICELIVE_MODEL', value: voiceLiveModel }
  { name: 'AZURE_VOICELIVE_API_VERSION', value: voiceLiveApiVersion }
  { name: 'VOICE_MAX_SESSIONS_PER_WORKER', value: string(maxSessionsPerWorker) }
  // The ingress appends to X-Forwarded-For, so a client address proves nothing here: /metrics
  // answers only a bearer token (METRICS_TOKEN, a secret you add; deploy/README.md).
  { name: 'METRICS_ALLOWED_NETWORKS', value: '' }
  // One JSON object a log line: Log Analytics parses ContainerAppConsoleLogs_CL's Log_s with
  // parse_json(). Traces: the environment's managed OpenTelemetry agent, when configured,
  // sets OTEL_EXPORTER_OTLP_ENDPOINT in the container (docs/operating.md).
  { name: 'VOICE_LOG_FORMAT', value: 'json' }
  { name: 'OTEL_SERVICE_NAME', value: 'voice-assistant' }
]

// Probes reach the replica directly: send the Host the app allows and the scheme the edge would.
var probeHeaders = [
  { name: 'Host', value: fqdn }
  { name: 'X-Forwarded-Proto', value: 'https' }
]

var registries = [
  {
    server: registryServer
    identity: identity.id
  }
]

resource web 'Microsoft.App/containerApps@2024-03-01' = if (deployWebApp) {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'web' })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 8000
        // HTTP/1.1 upstream: websockets are upgraded through the ingress.
        transport: 'http'
        allowInsecure: false
        traffic: [
          {
            latestRevision: true
            weight: 100
          }
        ]
      }
      registries: registries
      secrets: secrets
    }
    template: {
      // SIGTERM, on a deploy and on a scale-in alike, starts the drain (VOICE_DRAIN_SECONDS,
      // 5 s: sessions closed with the retryable 4001) plus Daphne's 10 s application close.
      terminationGracePeriodSeconds: 30
      containers: [
        {
          name: 'web'
          image: image
          env: env
          resources: {
            // One Daphne process per replica, one core each.
            cpu: json('1.0')
            memory: '2Gi'
          }
          probes: [
            {
              type: 'Startup'
              httpGet: {
                path: '/healthz'
                port: 8000
                httpHeaders: probeHeaders
              }
              initialDelaySeconds: 3
              periodSeconds: 5
              timeoutSeconds: 3
              failureThreshold: 24
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: 8000
                httpHeaders: probeHeaders
              }
              periodSeconds: 15
              timeoutSeconds: 3
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 8000
                httpHeaders: probeHeaders
              }
              periodSeconds: 10
              timeoutSeconds: 5
              failureThreshold: 3
              successThreshold: 1
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        // Container Apps scales on the first rule that asks for more replicas (deploy/README.md,
        // "Scaling"). No HTTP rule: its documented figure is the requests of the last 15 s
        // divided by 15, where a websocket held for minutes counts only in the 15 s it opened.
        rules: [
          {
            // KEDA's PostgreSQL scaler (polled every 30 s): replicas = ceil(live sessions of
            // all replicas / target), i.e. live sessions against capacity.
            name: 'live-sessions'
            custom: {
              type: 'postgresql'
              metadata: {
                query: liveSessionsQuery
                targetQueryValue: string(targetSessionsPerReplica)
              }
              // The app's own DATABASE_URL secret (postgres://...?sslmode=require), which
              // KEDA's pgx driver reads as it is.
              auth: [
                {
                  secretRef: 'database-url'
                  triggerParameter: 'connection'
                }
              ]
            }
          }
          {
            // One Daphne per 1-vCPU replica: its event loop lags once it is busy most of the
            // time (docs/benchmarks.md), whatever the session count says.
            name: 'cpu'
            custom: {
              type: 'cpu'
              metadata: {
                type: 'Utilization'
                value: string(cpuUtilizationPercent)
              }
            }
          }
        ]
      }
    }
  }
}

resource migrate 'Microsoft.App/jobs@2024-03-01' = {
  name: migrateJobName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 600
      replicaRetryLimit: 1
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
      registries: registries
      secrets: secrets
    }
    template: {
      containers: [
        {
          name: 'migrate'
          image: image
          command: ['python', 'manage.py', 'migrate', '--noinput']
          env: env
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
        }
      ]
    }
  }
}

output fqdn string = fqdn
output migrateJobName string = migrate.name
