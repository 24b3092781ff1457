-- Argo CD health check for corral.dev Persona, from its kstatus-style conditions.
--   Progressing: the operator has not written status for this generation yet, Ready is Unknown
--                or missing, or Reconciling is True.
--   Degraded:    Stalled is True, or Ready is False (e.g. InvalidSpec); the message is the
--                condition's.
--   Healthy:     Ready is True for the current generation.
-- The same rules as the Agent check, so all Corral kinds read alike. Lua 5.1 (gopher-lua), as
-- Argo CD runs it: `obj` is the live object, the script returns {status = ..., message = ...}.

local function find(conditions, kind)
  for _, condition in ipairs(conditions) do
    if condition.type == kind then
      return condition
    end
  end
  return nil
end

local function said(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition ~= nil and condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

local status = obj.status
if status == nil or status.conditions == nil then
  return {status = "Progressing", message = "Waiting for the Corral operator to report status"}
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  return {
    status = "Progressing",
    message = "Waiting for the Corral operator to observe generation " .. tostring(generation),
  }
end

local stalled = find(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = said(stalled, "Stalled")}
end

local ready = find(status.conditions, "Ready")
if ready ~= nil and ready.status == "False" and ready.reason ~= "RollingOut" then
  return {status = "Degraded", message = said(ready, "Not ready")}
end

local reconciling = find(status.conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  return {status = "Progressing", message = said(reconciling, "Reconciling")}
end

if ready == nil or ready.status ~= "True" then
  return {status = "Progressing", message = said(ready, "Waiting for the Ready condition")}
end

if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  return {status = "Progressing", message = "Ready describes an older generation"}
end

return {status = "Healthy", message = said(ready, "Ready")}
