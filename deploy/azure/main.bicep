// Voice assistant on Azure, azd style: subscription scope, one resource group per environment,
// names derived from a resource token, tags `azd-env-name` / `azd-service-name`.
//
// Deployed by deploy/azure/azdeploy.sh in three incremental passes (see deploy/README.md):
//   1. appImage = ''                      -> infrastructure only (the registry must exist first)
//   2. appImage = <image>, deployWebApp = false -> + the migrate job (run it before the app starts)
//   3. appImage = <image>, deployWebApp = true  -> + the web container app
// No API key is stored anywhere: the app authenticates to Azure AI Voice Live with its
// user-assigned managed identity (Cognitive Services User) and pulls its image with it (AcrPull).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd AZURE_ENV_NAME); names the resource group and tags.')
param environmentName string

@minLength(1)
@description('Region for every resource; must offer Voice Live and the realtime model (e.g. swedencentral, eastus2).')
param location string

@description('Object id of the deploying user: also gets Cognitive Services User, for local testing against Azure. Empty to skip.')
param principalId string = ''

@description('Full image reference in the registry (<registry>.azurecr.io/voice-assistant:<tag>); empty deploys the infrastructure only.')
param appImage string = ''

@description('Create or update the web container app (false: only the migrate job gets the image).')
param deployWebApp bool = true

@secure()
@description('DJANGO_SECRET_KEY; stored as a Container Apps secret.')
param djangoSecretKey string

@description('PostgreSQL administrator login.')
param postgresAdminLogin string = 'voiceadmin'

@secure()
@description('PostgreSQL administrator password; stored as part of the DATABASE_URL Container Apps secret.')
param postgresAdminPassword string

@description('Realtime model deployed on the AI Services account (gpt-realtime or gpt-4o-realtime-preview).')
param realtimeModelName string = 'gpt-realtime'

@description('Version of the realtime model.')
param realtimeModelVersion string = '2025-08-28'

@description('GlobalStandard capacity of the model deployment, in thousands of tokens per minute.')
param realtimeModelCapacity int = 10

@description('AZURE_VOICELIVE_API_VERSION passed to the app (pinned; the SDK default moves).')
param voiceLiveApiVersion string = '2026-07-15'

@minValue(1)
@description('Minimum web replicas (two or more so a restart never drops every session).')
param minReplicas int = 2

@minValue(1)
param maxReplicas int = 10

@minValue(1)
@description('Live sessions per replica the scale rule aims at (below maxSessionsPerWorker).')
param targetSessionsPerReplica int = 90

@minValue(10)
@maxValue(95)
@description('Average CPU per replica (percent of its 1 vCPU) above which replicas are added.')
param cpuUtilizationPercent int = 65

@description('Admission control inside each replica (VOICE_MAX_SESSIONS_PER_WORKER).')
param maxSessionsPerWorker int = 130

@description('Disable key authentication on the AI Services account (Entra ID only).')
param disableAiLocalAuth bool = true

@allowed(['Basic', 'Standard', 'Premium'])
@description('Azure Cache for Redis tier (Standard is replicated).')
param redisSku string = 'Standard'

var abbrs = {
  resourceGroup: 'rg-'
  logAnalytics: 'log-'
  identity: 'id-'
  registry: 'cr'
  aiServices: 'ais-'
  redis: 'redis-'
  postgres: 'psql-'
  containerAppsEnvironment: 'cae-'
  containerApp: 'ca-'
  containerAppJob: 'caj-'
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    name: '${abbrs.logAnalytics}${resourceToken}'
    location: location
    tags: tags
  }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.identity}web-${resourceToken}'
    location: location
    tags: tags
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: '${abbrs.registry}${resourceToken}'
    location: location
    tags: tags
    pullPrincipalId: identity.outputs.principalId
  }
}

module ai 'modules/ai.bicep' = {
  name: 'ai'
  scope: rg
  params: {
    name: '${abbrs.aiServices}${resourceToken}'
    location: location
    tags: tags
    modelName: realtimeModelName
    modelVersion: realtimeModelVersion
    modelCapacity: realtimeModelCapacity
    disableLocalAuth: disableAiLocalAuth
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  scope: rg
  params: {
    name: '${abbrs.redis}${resourceToken}'
    location: location
    tags: tags
    skuName: redisSku
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    name: '${abbrs.postgres}${resourceToken}'
    location: location
    tags: tags
    adminLogin: postgresAdminLogin
    adminPassword: postgresAdminPassword
    databaseName: 'voice'
  }
}

module containerAppsEnvironment 'modules/containerapps-env.bicep' = {
  name: 'containerapps-env'
  scope: rg
  params: {
    name: '${abbrs.containerAppsEnvironment}${resourceToken}'
    location: location
    tags: tags
    logAnalyticsName: monitoring.outputs.name
  }
}

var webAppName = '${abbrs.containerApp}web-${take(resourceToken, 8)}'
var migrateJobName = '${abbrs.containerAppJob}migrate-${take(resourceToken, 8)}'

module app 'modules/app.bicep' = if (!empty(appImage)) {
  name: 'app'
  scope: rg
  params: {
    name: webAppName
    migrateJobName: migrateJobName
    deployWebApp: deployWebApp
    location: location
    tags: tags
    image: appImage
    environmentName: containerAppsEnvironment.outputs.name
    identityName: identity.outputs.name
    registryServer: registry.outputs.loginServer
    redisName: redis.outputs.name
    postgresHost: postgres.outputs.fqdn
    postgresDatabase: postgres.outputs.databaseName
    postgresAdminLogin: postgresAdminLogin
    postgresAdminPassword: postgresAdminPassword
    djangoSecretKey: djangoSecretKey
    voiceLiveEndpoint: ai.outputs.endpoint
    voiceLiveModel: realtimeModelName
    voiceLiveApiVersion: voiceLiveApiVersion
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    targetSessionsPerReplica: targetSessionsPerReplica
    cpuUtilizationPercent: cpuUtilizationPercent
    maxSessionsPerWorker: maxSessionsPerWorker
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = containerAppsEnvironment.outputs.name
output AZURE_CONTAINER_APP_NAME string = webAppName
output AZURE_MIGRATE_JOB_NAME string = migrateJobName
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_VOICELIVE_ENDPOINT string = ai.outputs.endpoint
output AZURE_AI_SERVICES_NAME string = ai.outputs.name
output SERVICE_WEB_URI string = 'https://${webAppName}.${containerAppsEnvironment.outputs.defaultDomain}'
