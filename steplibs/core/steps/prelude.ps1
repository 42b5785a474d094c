{% if params.creates %}
if (Test-Path -LiteralPath {{ params.creates }}) { 'OPSC_OUTPUT changed=false'; exit 0 }
{% endif %}
{% if params.removes %}
if (-not (Test-Path -LiteralPath {{ params.removes }})) { 'OPSC_OUTPUT changed=false'; exit 0 }
{% endif %}
{% if params.cwd %}
Set-Location -LiteralPath {{ params.cwd }}
{% endif %}
{% for name, value in params.env %}
[Environment]::SetEnvironmentVariable({{ name }}, {{ value }}, 'Process')
{% endfor %}
