echo 'OPSC_OUTPUT changed=true'
{% if params.shell %}
exec {{ params.shell }} -c {{ params.command }}
{% else %}
{{ params.command | raw }}
{% endif %}
