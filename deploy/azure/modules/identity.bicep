// User-assigned managed identity of the web app and the migrate job: pulls the image (AcrPull)
// and calls Azure AI Voice Live (Cognitive Services User). The app gets its client id as
// AZURE_CLIENT_ID so DefaultAzureCredential picks this identity.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
