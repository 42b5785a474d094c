'OPSC_OUTPUT changed=true'
$global:LASTEXITCODE = 0
{% if params.shell == 'cmd' %}
& cmd.exe /d /s /c {{ params.command }}
{% elif params.shell %}
& {{ params.shell }} -NoProfile -NonInteractive -Command {{ params.command }}
{% else %}
{{ params.command | raw }}
{% endif %}
exit $LASTEXITCODE
