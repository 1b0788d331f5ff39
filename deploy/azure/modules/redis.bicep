// Azure Cache for Redis for the channel layer and the cache: TLS only (port 6380, rediss://).
// The access key never leaves Azure Resource Manager: the app module reads it with listKeys()
// into a Container Apps secret.
param name string
param location string
param tags object = {}
@allowed(['Basic', 'Standard', 'Premium'])
param skuName string = 'Standard'

resource redis 'Microsoft.Cache/redis@2024-03-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuName == 'Premium' ? 'P' : 'C'
      capacity: skuName == 'Premium' ? 1 : 0
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    redisVersion: '6'
  }
}

output name string = redis.name
output hostName string = redis.properties.hostName
output sslPort int = redis.properties.sslPort
